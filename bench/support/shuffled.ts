/** A copy of `xs` in a random order (Fisher–Yates): the A/B scripts' block order, so what one run leaves to the next (GC debt) lands on every run alike. */
export function shuffled<T>(xs: readonly T[]): T[] {
  const order = [...xs];
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  return order;
}
