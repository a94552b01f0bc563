export * from './parse';
export * from './redact';
export * from './describe';
