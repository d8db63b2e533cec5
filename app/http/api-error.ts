/** An error the API answers as it is: `{ error: { code, message, field? } }` with `status`. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly field?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

/** 400 VALIDATION_FAILED for the input `field`. */
export function validationFailed(message: string, field: string): ApiError {
  return new ApiError(400, 'VALIDATION_FAILED', message, field);
}

/** 404 NOT_FOUND: used for rows of other tenants too, which must look absent (never 403). */
export function notFound(what: string): ApiError {
  return new ApiError(404, 'NOT_FOUND', `${what} not found`);
}
