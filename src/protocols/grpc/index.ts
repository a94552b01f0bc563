export * from './status';
export * from './describe';
