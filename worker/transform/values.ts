/**
 * Property values as the transform sees them: whatever JSON.parse gives, except
 * that an integer literal too long to be exact as a double arrives as an
 * ExactInteger holding its source text (see payload.ts), so `bigint` columns
 * never see a rounded value.
 */
export class ExactInteger {
  constructor(readonly text: string) {}
  toNumber(): number {
    return Number(this.text);
  }
  toJSON(): unknown {
    // Keeps the digits when the event is re-serialised (non-tracked output).
    return this.text;
  }
}

export type Properties = Record<string, unknown>;
