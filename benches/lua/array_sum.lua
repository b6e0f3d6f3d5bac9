-- Fill an array of n floats with i * 0.5, then sum it. Twin of examples/array_sum.mini.
package.path = (arg[0]:match("(.*/)") or "./") .. "?.lua;" .. package.path
local repr = require("repr")

local function fill(a, n)
  for i = 0, n - 1 do
    a[i + 1] = i * 0.5
  end
end

local function total(a, n)
  local s = 0.0
  for i = 1, n do
    s = s + a[i]
  end
  return s
end

local n = tonumber(arg[1]) or 20000000
local a = {}
fill(a, n)
print(repr.float(total(a, n)))
