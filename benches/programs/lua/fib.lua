-- fib: doubly recursive Fibonacci on integers (port of benches/programs/fib.lisp).
-- Usage: lua5.4 fib.lua [n]
local function fib(n)
  if n < 2 then return n end
  return fib(n - 1) + fib(n - 2)
end
io.write(fib(tonumber(arg[1] or "25")), "\n")
