export * from './onboard/index.js';
export * from './export/index.js';
