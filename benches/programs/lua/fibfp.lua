-- fibfp: doubly recursive Fibonacci on floats (port of benches/programs/fibfp.lisp).
-- Usage: lua5.4 fibfp.lua [n]
local function fibfp(n)
  if n < 2.0 then return n end
  return fibfp(n - 1.0) + fibfp(n - 2.0)
end
io.write(string.format("%.1f", fibfp(tonumber(arg[1] or "25") + 0.0)), "\n")
