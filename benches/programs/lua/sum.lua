-- sum: an integer counting loop run several times (port of benches/programs/sum.lisp).
-- Usage: lua5.4 sum.lua [times n]
local function run(n)
  local sum = 0
  local i = n
  while not (i < 0) do
    sum = sum + i
    i = i - 1
  end
  return sum
end
local function rep(k, n)
  local r = 0
  while k ~= 0 do
    r = run(n)
    k = k - 1
  end
  return r
end
io.write(rep(tonumber(arg[1] or "20"), tonumber(arg[2] or "10000")), "\n")
