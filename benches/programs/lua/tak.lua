-- tak: Takeuchi's function (port of benches/programs/tak.lisp).
-- Usage: lua5.4 tak.lua [x y z]
local function tak(x, y, z)
  if not (y < x) then return z end
  return tak(tak(x - 1, y, z), tak(y - 1, z, x), tak(z - 1, x, y))
end
io.write(tak(tonumber(arg[1] or "18"), tonumber(arg[2] or "12"), tonumber(arg[3] or "6")), "\n")
