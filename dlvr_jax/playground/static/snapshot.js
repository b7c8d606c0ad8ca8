// Decodes the server's binary snapshot frames (protocol v1):
// uint32 H (little-endian) | H bytes of UTF-8 JSON header | zero padding to a
// multiple of 4 | float32 data, each array at header.arrays[name].offset bytes
// from the start of the data section, C order.

const decoder = new TextDecoder();

/** Returns {header, arrays: {name: Float32Array}, shapes: {name: [..]}}; views, no copy. */
export function decodeSnapshot(buffer) {
  const view = new DataView(buffer);
  const length = view.getUint32(0, true);
  const header = JSON.parse(decoder.decode(new Uint8Array(buffer, 4, length)));
  const start = (4 + length + 3) & ~3;
  const arrays = {};
  const shapes = {};
  for (const [name, spec] of Object.entries(header.arrays || {})) {
    const count = spec.shape.reduce((p, n) => p * n, 1);
    const offset = start + spec.offset;
    if (offset % 4 === 0) {
      arrays[name] = new Float32Array(buffer, offset, count);
    } else { // never with a conforming server; copy rather than fail
      arrays[name] = new Float32Array(buffer.slice(offset, offset + 4 * count));
    }
    shapes[name] = spec.shape;
  }
  return { header, arrays, shapes };
}
