-- ack: Ackermann's function (port of benches/programs/ack.lisp).
-- Usage: lua5.4 ack.lua [n]   prints (ack 2 9) and (ack 3 n)
local function ack(m, n)
  if m == 0 then return n + 1 end
  if n == 0 then return ack(m - 1, 1) end
  return ack(m - 1, ack(m, n - 1))
end
io.write(ack(2, 9), " ", ack(3, tonumber(arg[1] or "5")), "\n")
