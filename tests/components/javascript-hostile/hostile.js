// A JavaScript condition that misbehaves on purpose, as its config says.

export function validate(config) {}

export function evaluate(input) {
  const behaviour = JSON.parse(input.config).behaviour;
  if (behaviour === 'infinite-loop') {
    let n = 0;
    for (;;) n += 1;
  }
  if (behaviour === 'memory-bomb') {
    const hoard = new Uint8Array(1 << 30);
    hoard.fill(1);
    return { fire: true, value: hoard.length, labels: [] };
  }
  throw `unknown behaviour '${behaviour}'`;
}
