// suspended_memory/node: resident memory per suspended async function (SPEC §9), the Node
// side of `benches/benches/lisp_async.rs`. Usage: node suspended_memory.js N
// Prints "<rss before> <rss after>" in bytes: before spawning, and once N async functions are
// each parked in `await new Promise(r => setTimeout(r, 60000))`. Then exits without waiting.
'use strict';
const n = Number(process.argv[2] || 100000);
let parked = 0;
async function task() {
  parked++;
  await new Promise((r) => setTimeout(r, 60000));
}
async function main() {
  // Warm up the same code path on a few tasks first (JIT, timer list).
  for (let i = 0; i < 10; i++) task();
  await new Promise((r) => setTimeout(r, 10));
  parked = 0;
  const before = process.memoryUsage().rss;
  const ps = new Array(n);
  for (let i = 0; i < n; i++) ps[i] = task();
  // Every body ran up to its await synchronously; let the microtask queue settle.
  await new Promise((r) => setImmediate(r));
  if (parked !== n) throw new Error(`only ${parked} of ${n} parked`);
  const after = process.memoryUsage().rss;
  console.log(`${before} ${after}`);
  process.exit(0);
}
main();
