-- n-body simulation of the Jovian planets, after the Computer Language Benchmarks Game. The
-- bodies are kept in flat arrays (x, y, z, vx, vy, vz, mass) as in examples/nbody.mini, whose
-- twin this is; prints the energies before and after. (Arrays are Lua's 1-based tables.)
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local repr = require("repr")
local sqrt = math.sqrt

local PI = 3.141592653589793
local SOLAR_MASS = 4.0 * PI * PI
local DAYS_PER_YEAR = 365.24
local NB = 5

local function setup(x, y, z, vx, vy, vz, m)
  -- sun
  x[1], y[1], z[1], vx[1], vy[1], vz[1], m[1] = 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, SOLAR_MASS
  -- jupiter
  x[2] = 4.84143144246472090
  y[2] = -1.16032004402742839
  z[2] = -1.03622044471123109e-01
  vx[2] = 1.66007664274403694e-03 * DAYS_PER_YEAR
  vy[2] = 7.69901118419740425e-03 * DAYS_PER_YEAR
  vz[2] = -6.90460016972063023e-05 * DAYS_PER_YEAR
  m[2] = 9.54791938424326609e-04 * SOLAR_MASS
  -- saturn
  x[3] = 8.34336671824457987
  y[3] = 4.12479856412430479
  z[3] = -4.03523417114321381e-01
  vx[3] = -2.76742510726862411e-03 * DAYS_PER_YEAR
  vy[3] = 4.99852801234917238e-03 * DAYS_PER_YEAR
  vz[3] = 2.30417297573763929e-05 * DAYS_PER_YEAR
  m[3] = 2.85885980666130812e-04 * SOLAR_MASS
  -- uranus
  x[4] = 12.8943695621391310
  y[4] = -15.1111514016986312
  z[4] = -2.23307578892655734e-01
  vx[4] = 2.96460137564761618e-03 * DAYS_PER_YEAR
  vy[4] = 2.37847173959480950e-03 * DAYS_PER_YEAR
  vz[4] = -2.96589568540237556e-05 * DAYS_PER_YEAR
  m[4] = 4.36624404335156298e-05 * SOLAR_MASS
  -- neptune
  x[5] = 15.3796971148509165
  y[5] = -25.9193146099879641
  z[5] = 1.79258772950371181e-01
  vx[5] = 2.68067772490389322e-03 * DAYS_PER_YEAR
  vy[5] = 1.62824170038242295e-03 * DAYS_PER_YEAR
  vz[5] = -9.51592254519715870e-05 * DAYS_PER_YEAR
  m[5] = 5.15138902046611451e-05 * SOLAR_MASS
end

local function offset_momentum(vx, vy, vz, m, nb)
  local px, py, pz = 0.0, 0.0, 0.0
  for i = 1, nb do
    px = px + vx[i] * m[i]
    py = py + vy[i] * m[i]
    pz = pz + vz[i] * m[i]
  end
  vx[1] = -px / SOLAR_MASS
  vy[1] = -py / SOLAR_MASS
  vz[1] = -pz / SOLAR_MASS
end

local function energy(x, y, z, vx, vy, vz, m, nb)
  local e = 0.0
  for i = 1, nb do
    e = e + 0.5 * m[i] * (vx[i] * vx[i] + vy[i] * vy[i] + vz[i] * vz[i])
    for j = i + 1, nb do
      local dx = x[i] - x[j]
      local dy = y[i] - y[j]
      local dz = z[i] - z[j]
      e = e - m[i] * m[j] / sqrt(dx * dx + dy * dy + dz * dz)
    end
  end
  return e
end

local function advance(x, y, z, vx, vy, vz, m, nb, steps, dt)
  for _ = 1, steps do
    for i = 1, nb do
      for j = i + 1, nb do
        local dx = x[i] - x[j]
        local dy = y[i] - y[j]
        local dz = z[i] - z[j]
        local d2 = dx * dx + dy * dy + dz * dz
        local mag = dt / (d2 * sqrt(d2))
        local mi = m[i] * mag
        local mj = m[j] * mag
        vx[i] = vx[i] - dx * mj
        vy[i] = vy[i] - dy * mj
        vz[i] = vz[i] - dz * mj
        vx[j] = vx[j] + dx * mi
        vy[j] = vy[j] + dy * mi
        vz[j] = vz[j] + dz * mi
      end
    end
    for i = 1, nb do
      x[i] = x[i] + dt * vx[i]
      y[i] = y[i] + dt * vy[i]
      z[i] = z[i] + dt * vz[i]
    end
  end
end

local steps = tonumber(arg[1]) or 1000000
local x, y, z, vx, vy, vz, m = {}, {}, {}, {}, {}, {}, {}
setup(x, y, z, vx, vy, vz, m)
offset_momentum(vx, vy, vz, m, NB)
print(repr.float(energy(x, y, z, vx, vy, vz, m, NB)))
advance(x, y, z, vx, vy, vz, m, NB, steps, 0.01)
print(repr.float(energy(x, y, z, vx, vy, vz, m, NB)))
