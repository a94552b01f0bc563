export * from './parse';
export * from './errorCodes';
export * from './describe';
