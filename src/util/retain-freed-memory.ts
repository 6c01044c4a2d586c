/**
 * glibc hands freed heap memory back to the kernel as soon as more than 128 KiB
 * lies free at the top of the heap, and the next allocations fault fresh zeroed
 * pages in again. Streaming gigabytes through Node allocates and frees a buffer
 * for every socket read, so by default that churn costs a page fault for every
 * 4 KiB moved: measured here as a sixth of an export's time, more on VMs where
 * the host reclaims freed pages. glibc raises its trim threshold to twice the
 * largest mmapped block freed so far (its dynamic mmap threshold, for blocks up
 * to 32 MiB), so freeing one 16 MiB block early lets up to 32 MiB of freed
 * memory stay in the process: measured as fast as 64 MiB, for less memory.
 * With another allocator this is a no-op.
 */
const PROBE_BYTES = 16 * 1024 * 1024;

export function retainFreedMemory(): void {
  // Allocated outside V8's pool and dropped at once: the next GC frees it with free().
  Buffer.allocUnsafeSlow(PROBE_BYTES);
}

/**
 * The faults saved are paid per byte moved, the memory kept is paid once: below
 * this many bytes the trade is a loss (importing 3,000 small images, 10 MB in all,
 * kept 27 MiB more resident for no measurable gain in time).
 */
const WORTH_IT_BYTES = 256 * 1024 * 1024;

/** retainFreedMemory, when `bytes` are about to stream through this process. */
export function retainFreedMemoryToMove(bytes: number): void {
  if (bytes >= WORTH_IT_BYTES) retainFreedMemory();
}
