-- Spectral norm of the infinite matrix A(i, j) = 1 / ((i + j) * (i + j + 1) / 2 + i + 1),
-- after the Computer Language Benchmarks Game (10 power iterations). Twin of
-- examples/spectral_norm.mini. Vectors are Lua's 1-based tables; eval_a takes 1-based
-- indices and computes the same value with as many operations as the 0-based original.
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local repr = require("repr")
local floor = math.floor

local function eval_a(i, j)
  return 1.0 / (floor((i + j - 2) * (i + j - 1) / 2) + i)
end

local function mul_av(n, v, av)
  for i = 1, n do
    local s = 0.0
    for j = 1, n do
      s = s + eval_a(i, j) * v[j]
    end
    av[i] = s
  end
end

local function mul_atv(n, v, atv)
  for i = 1, n do
    local s = 0.0
    for j = 1, n do
      s = s + eval_a(j, i) * v[j]
    end
    atv[i] = s
  end
end

local function mul_atav(n, v, atav, tmp)
  mul_av(n, v, tmp)
  mul_atv(n, tmp, atav)
end

local function filled(n, value)
  local t = {}
  for i = 1, n do t[i] = value end
  return t
end

local function spectral_norm(n)
  local u, v, tmp = filled(n, 1.0), filled(n, 0.0), filled(n, 0.0)
  for _ = 1, 10 do
    mul_atav(n, u, v, tmp)
    mul_atav(n, v, u, tmp)
  end
  local vbv, vv = 0.0, 0.0
  for i = 1, n do
    vbv = vbv + u[i] * v[i]
    vv = vv + v[i] * v[i]
  end
  return math.sqrt(vbv / vv)
end

local n = tonumber(arg[1]) or 500
print(repr.float(spectral_norm(n)))
