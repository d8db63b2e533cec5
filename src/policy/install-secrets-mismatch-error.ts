import { TenantryError } from '../errors/tenantry-error.js';

/**
 * `install(url, { secretsMustMatch: true })` refused to run: a password given for a role that has
 * one already is not that role's, or the context secret given is not the key stored in the
 * database. Install keeps both (it never changes what a running application depends on), so a
 * process using the given ones would be refused (28P01) or fail every tenant request (TR001).
 * Checked before anything is changed: nothing was. Never carries a secret.
 */
export class InstallSecretsMismatchError extends TenantryError {
  /** Each mismatch: `password of <role>` or `context secret`. */
  readonly mismatched: readonly string[];

  constructor(mismatched: string[]) {
    super(
      'INSTALL_SECRETS_MISMATCH',
      `${mismatched.join(' and ')} given ${mismatched.length > 1 ? 'are' : 'is'} not the database's: nothing was changed. ` +
        "Give the deployment's secrets, or change the database's with tenantry rotate password / context-secret.",
      { status: 500, details: { mismatched } },
    );
    this.mismatched = mismatched;
  }
}
