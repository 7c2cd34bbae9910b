-- sumfp: a float counting loop (port of benches/programs/sumfp.lisp).
-- Usage: lua5.4 sumfp.lua [n]
local function run(n)
  local sum = 0.0
  local i = n
  while not (i < 0.0) do
    sum = sum + i
    i = i - 1.0
  end
  return sum
end
io.write(string.format("%.1f", run(tonumber(arg[1] or "100000") + 0.0)), "\n")
