export * from './parse';
export * from './redact';
