/** lib/base: errors, limits, assertions, time, randomness, hashing, checksums and logs. */
export * from './errors.js';
export * from './assert.js';
export * from './clock.js';
export * from './rng.js';
export * from './hash.js';
export * from './crc32c.js';
export * from './limits.js';
export * from './log.js';
