export {
  DEFAULT_PROC_ROOT,
  listPids,
  listeningTcpPorts,
  listeningTcpPortsAllNamespaces,
  parseListeningTcp,
  procfsListeningReader,
  parseStartTimeTicks,
  parseStat,
  readEnviron,
  readExePath,
  readProcessInfo,
  readStartTimeTicks,
  readStat,
  socketInodesOf,
  type ListeningTcpReader,
  type ProcessInfo,
  type ProcessStat,
} from './procfs';
export { globMatch, matchesExe, selectsEverything, type Selection } from './selectors';
export { isInterpreter } from './interpreters';
export { kernelListeningReader } from './kernelListening';
export {
  parseResourceAttributes,
  resourceAttributesFor,
  serviceNameFor,
  type ResourceAttributes,
  type ResourceAttributeValue,
} from './serviceName';
export {
  DEFAULT_POLL_INTERVAL_MS,
  ProcessWatcher,
  type ProcessWatcherOptions,
  type TracedProcess,
} from './ProcessWatcher';
export { executableOf, openSslLibrariesOf, parseOpenSslLibraries, systemOpenSslLibraries, type TlsLibrary } from './tlsLibraries';
