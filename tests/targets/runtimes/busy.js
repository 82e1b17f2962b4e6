// busy.js SECONDS: spins in hotLoop (a named, JIT-compiled function) for SECONDS.
function hotLoop(n) {
  let x = 0;
  for (let i = 0; i < n; i++) {
    x = (x * 31 + i) % 1000003;
  }
  return x;
}
const end = Date.now() + 1000 * Number(process.argv[2] || 1);
let sum = 0;
while (Date.now() < end) {
  sum += hotLoop(100000);
}
console.log(sum > 0 ? "done" : "none");
