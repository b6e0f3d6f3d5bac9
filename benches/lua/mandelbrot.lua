-- Mandelbrot set: count the points of a size x size grid over [-1.5, 0.5] x [-1, 1] that
-- stay within radius 2 for 50 iterations. Twin of examples/mandelbrot.mini.
local function inside(cr, ci, max_iter)
  local zr, zi = 0.0, 0.0
  for _ = 1, max_iter do
    local tr = zr * zr - zi * zi + cr
    local ti = 2.0 * zr * zi + ci
    zr = tr
    zi = ti
    if zr * zr + zi * zi > 4.0 then return false end
  end
  return true
end

local function mandelbrot(size, max_iter)
  local count = 0
  for y = 0, size - 1 do
    local ci = 2.0 * y / size - 1.0
    for x = 0, size - 1 do
      local cr = 2.0 * x / size - 1.5
      if inside(cr, ci, max_iter) then count = count + 1 end
    end
  end
  return count
end

local size = tonumber(arg[1]) or 800
print(string.format("%d", mandelbrot(size, 50)))
