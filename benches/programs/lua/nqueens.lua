-- nqueens: counts the n-queens solutions with linked lists (port of
-- benches/programs/nqueens.lisp; a list is nil or a pair {head, tail}, as in the Lisp).
-- Usage: lua5.4 nqueens.lua [n]
local function cons(a, d) return { a, d } end

local function append(x, y)
  if x == nil then return y end
  return cons(x[1], append(x[2], y))
end

local function iota1(n)
  local l = nil
  for i = n, 1, -1 do l = cons(i, l) end
  return l
end

local function ok(row, dist, placed)
  while placed ~= nil do
    if placed[1] == row + dist or placed[1] == row - dist then return false end
    dist = dist + 1
    placed = placed[2]
  end
  return true
end

local function try_it(x, y, z)
  if x == nil then
    if y == nil then return 1 end
    return 0
  end
  local a = 0
  if ok(x[1], 1, z) then a = try_it(append(x[2], y), nil, cons(x[1], z)) end
  return a + try_it(x[2], cons(x[1], y), z)
end

io.write(try_it(iota1(tonumber(arg[1] or "8")), nil, nil), "\n")
