// Proof of work for a new session: find a counter such that SHA-256 of
// "<challenge>:<counter>" starts with `bits` zero bits (libs/hashcash.py is the same
// in Python). SHA-256 is written out here because the browser's crypto.subtle is
// asynchronous per hash, far too slow for the million hashes of 20 bits.

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);
const INITIAL = [
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];
const W = new Uint32Array(64);
const YIELD_EVERY = 20000; // hashes between returns to the event loop

const rotr = (x, n) => (x >>> n) | (x << (32 - n));

/** One 64-byte block of `bytes` at `offset` into `state` (eight 32-bit words). */
function compress(state, bytes, offset) {
  for (let i = 0; i < 16; i += 1) {
    const j = offset + i * 4;
    W[i] = (bytes[j] << 24) | (bytes[j + 1] << 16) | (bytes[j + 2] << 8) | bytes[j + 3];
  }
  for (let i = 16; i < 64; i += 1) {
    const a = W[i - 15];
    const b = W[i - 2];
    const s0 = rotr(a, 7) ^ rotr(a, 18) ^ (a >>> 3);
    const s1 = rotr(b, 17) ^ rotr(b, 19) ^ (b >>> 10);
    W[i] = (W[i - 16] + s0 + W[i - 7] + s1) | 0;
  }
  let a = state[0];
  let b = state[1];
  let c = state[2];
  let d = state[3];
  let e = state[4];
  let f = state[5];
  let g = state[6];
  let h = state[7];
  for (let i = 0; i < 64; i += 1) {
    const t1 = (h + (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + W[i]) | 0;
    const t2 = ((rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) + ((a & b) ^ (a & c) ^ (b & c))) | 0;
    h = g;
    g = f;
    f = e;
    e = (d + t1) | 0;
    d = c;
    c = b;
    b = a;
    a = (t1 + t2) | 0;
  }
  state[0] += a;
  state[1] += b;
  state[2] += c;
  state[3] += d;
  state[4] += e;
  state[5] += f;
  state[6] += g;
  state[7] += h;
}

/** Lay out `tail` (under 64 bytes) and SHA-256's padding for a message of `total`
 * bytes in `buffer`; returns how many 64-byte blocks that makes. */
function pad(tail, total, buffer) {
  const blocks = tail.length + 9 <= 64 ? 1 : 2;
  buffer.fill(0);
  buffer.set(tail);
  buffer[tail.length] = 0x80;
  const bits = total * 8; // stamps are far below 2**32 bits
  const end = blocks * 64;
  buffer[end - 4] = bits >>> 24;
  buffer[end - 3] = (bits >>> 16) & 0xff;
  buffer[end - 2] = (bits >>> 8) & 0xff;
  buffer[end - 1] = bits & 0xff;
  return blocks;
}

/** `start` continued over the padded blocks in `buffer`, into `state`. */
function finish(start, buffer, blocks, state) {
  state.set(start);
  compress(state, buffer, 0);
  if (blocks === 2) compress(state, buffer, 64);
  return state;
}

function zeroBits(state) {
  let bits = 0;
  for (const word of state) {
    if (word !== 0) return bits + Math.clz32(word);
    bits += 32;
  }
  return bits;
}

const encoder = new TextEncoder();

/** SHA-256 of a string's UTF-8, in hex. */
export function sha256Hex(text) {
  const bytes = encoder.encode(text);
  const whole = bytes.length - (bytes.length % 64);
  const start = Uint32Array.from(INITIAL);
  for (let i = 0; i < whole; i += 64) compress(start, bytes, i);
  const buffer = new Uint8Array(128);
  const blocks = pad(bytes.subarray(whole), bytes.length, buffer);
  const digest = finish(start, buffer, blocks, new Uint32Array(8));
  return Array.from(digest, (w) => w.toString(16).padStart(8, "0")).join("");
}

/** A stamp "<challenge>:<counter>" whose SHA-256 starts with `bits` zero bits. */
export async function solve(challenge, bits) {
  const prefix = encoder.encode(`${challenge}:`);
  const whole = prefix.length - (prefix.length % 64);
  const start = Uint32Array.from(INITIAL);
  for (let i = 0; i < whole; i += 64) compress(start, prefix, i);
  const rest = prefix.subarray(whole);
  const buffer = new Uint8Array(128);
  const state = new Uint32Array(8);
  let width = 0; // hex digits of the counter the buffer is laid out for
  let blocks = 0;
  for (let counter = 0; ; counter += 1) {
    const text = counter.toString(16);
    if (text.length !== width) {
      width = text.length;
      const tail = new Uint8Array(rest.length + width);
      tail.set(rest);
      blocks = pad(tail, prefix.length + width, buffer);
    }
    for (let i = 0; i < width; i += 1) buffer[rest.length + i] = text.charCodeAt(i);
    if (zeroBits(finish(start, buffer, blocks, state)) >= bits) return `${challenge}:${text}`;
    if (counter % YIELD_EVERY === YIELD_EVERY - 1) {
      await new Promise((resolve) => setTimeout(resolve, 0)); // keep the page responsive
    }
  }
}
