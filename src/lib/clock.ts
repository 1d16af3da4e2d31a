/**
 * The time, passed in: flows, grants and services take a Clock rather than calling `new Date()`, so a
 * test moves time instead of sleeping across a boundary.
 */
export type Clock = () => Date;

/** The real clock. */
export const systemClock: Clock = () => new Date();

/** Whole seconds since the epoch (JWT NumericDate, RFC 7519 §2). */
export function epochSeconds(clock: Clock): number {
  return Math.floor(clock().getTime() / 1000);
}
