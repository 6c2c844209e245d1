// Every package builds the same way; see tsup.config.base.ts at the root.
export { default } from '../../tsup.config.base';
