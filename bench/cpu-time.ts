/**
 * The process's CPU time (user + system), the clock every bench here times by: a shared 2-core
 * machine's other work shows in wall-clock time but not in this process's CPU time.
 */
export function cpuMicros(): number {
  const { user, system } = process.cpuUsage();
  return user + system;
}

/** `cpuMicros` in milliseconds. */
export function cpuMs(): number {
  return cpuMicros() / 1000;
}
