/**
 * What serving has learnt about each blob's bytes. A blob whose bytes did not
 * match its digest once is never served again; a blob that matched once may be
 * served in ranges (a range alone cannot be checked).
 */
export class BlobHealth {
  private readonly damaged = new Map<string, string>();
  private readonly good = new Set<string>();
  private readonly checks = new Map<string, Promise<boolean>>();

  damage(digest: string): string | undefined {
    return this.damaged.get(digest);
  }

  isGood(digest: string): boolean {
    return this.good.has(digest);
  }

  markDamaged(digest: string, why: string): void {
    this.good.delete(digest);
    this.damaged.set(digest, why);
  }

  markGood(digest: string): void {
    if (!this.damaged.has(digest)) this.good.add(digest);
  }

  /** One check per blob at a time, however many clients ask for ranges of it at once. */
  async checkOnce(digest: string, check: () => Promise<boolean>): Promise<boolean> {
    let running = this.checks.get(digest);
    if (!running) {
      running = check().finally(() => this.checks.delete(digest));
      this.checks.set(digest, running);
    }
    return running;
  }
}
