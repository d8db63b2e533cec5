export * from './purge/index.js';
