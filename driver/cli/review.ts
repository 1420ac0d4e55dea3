/**
 * `spade review --runtag X --output ...`: prints the review of a replay run again,
 * from its stored `<runtag>/_review.json`, and where its page is.
 */
import { isS3Url, localPath, openStore } from '../../worker/store/location.js';
import { formatReview, type ReviewDetail } from '../review/print.js';
import { readRunReview, reviewHtmlKey, reviewJsonKey } from '../review/record.js';
import { UsageError } from './errors.js';

export interface ReviewCommandOptions {
  runtag: string;
  /** The replay's --output (s3://bucket[/prefix] or a directory). */
  output: string;
  detail: ReviewDetail;
}

/** The lines to print; a run without a stored review is a UsageError. */
export async function reviewCommand(opts: ReviewCommandOptions): Promise<string[]> {
  let output = opts.output;
  if (!isS3Url(output)) {
    try {
      output = localPath(output);
    } catch (err) {
      throw new UsageError(`--output: ${(err as Error).message}`);
    }
  }
  const store = openStore(output);
  const review = await readRunReview(store, opts.runtag);
  if (!review) {
    throw new UsageError(
      `no review of run ${opts.runtag} under ${store.url} (missing ${reviewJsonKey(opts.runtag)}); ` +
        `a replay stores it when it loads (or previews)`,
    );
  }
  return [
    ...formatReview(review, opts.detail),
    `review: ${store.urlOf(reviewHtmlKey(opts.runtag))} (data: ${store.urlOf(reviewJsonKey(opts.runtag))})`,
  ];
}
