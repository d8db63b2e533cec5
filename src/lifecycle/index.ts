export * from './onboard/index.js';
