/** The SQLSTATE or Tenantry code `promise` rejects with; fails the test if it resolves. */
export async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    throw error;
  }
  throw new Error('expected the statement to be refused, but it succeeded');
}
