-- A tight integer loop: sum of i % 7 for i below n. Twin of examples/loop.mini.
local function loop(n)
  local s = 0
  local i = 0
  while i < n do
    s = s + i % 7
    i = i + 1
  end
  return s
end

local n = tonumber(arg[1]) or 100000000
print(string.format("%d", loop(n)))
