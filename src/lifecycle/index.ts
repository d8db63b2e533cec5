export * from './onboard/index.js';
export * from './purge/index.js';
export * from './export/index.js';
