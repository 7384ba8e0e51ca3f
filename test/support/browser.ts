// Browser-test helpers shared by the web UI tests.
import type { Page } from 'playwright-core';

/**
 * page.goto, retried when Chromium aborts the load with net::ERR_NETWORK_CHANGED. The
 * local cluster's CNI adds and removes a veth interface for every pod, and Chromium
 * aborts loads in flight on any interface change, even loads from 127.0.0.1. Any other
 * failure is thrown at once.
 */
export async function visit(page: Page, url: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await page.goto(url);
      return;
    } catch (err) {
      if (attempt >= 3 || !/net::ERR_NETWORK_CHANGED/.test((err as Error).message)) throw err;
    }
  }
}
