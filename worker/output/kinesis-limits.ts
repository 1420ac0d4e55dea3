/**
 * Kinesis' limits and our connection settings, apart from kinesis.ts so that
 * the CLI can read them without loading the AWS SDK (loaded on first use only:
 * see kinesis-publish.ts).
 */
export const MAX_BATCH_RECORDS = 500;
export const MAX_BATCH_BYTES = 5 * 1024 * 1024;
/** Data plus partition key of one record. */
export const MAX_RECORD_BYTES = 1024 * 1024;
export const DEFAULT_KINESIS_CONCURRENCY = 4;

export interface KinesisConnection {
  /** Default: AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
  region?: string;
  /** e.g. http://127.0.0.1:4567 for kinesalite; default: the region's AWS endpoint. */
  endpoint?: string;
  /** Default: the AWS default credential chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

/** The region a connection uses: its own, else AWS_REGION, AWS_DEFAULT_REGION, else us-east-1. */
export function kinesisRegion(conn: KinesisConnection, env: NodeJS.ProcessEnv = process.env): string {
  return conn.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1';
}

/** Where a connection's streams are, for messages: its endpoint, else its region. */
export function kinesisWhere(conn: KinesisConnection): string {
  return conn.endpoint ?? `region ${kinesisRegion(conn)}`;
}
