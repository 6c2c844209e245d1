/**
 * A `vpci-fuzz` worker thread: runs the cases the CLI posts it (a case number each), posting each
 * one's result back. The campaign's options come as the thread's `workerData`.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { type CampaignOptions, runCase } from './campaign.js';

const options = workerData as CampaignOptions;
parentPort!.on('message', (index: number) => {
  parentPort!.postMessage(runCase(options, index));
});
