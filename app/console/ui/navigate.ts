/** Moves the console to another of its pages without a reload (the server serves the same page for every /console path). */
export function navigate(path: string): void {
  history.pushState(null, '', `/console/${path}`);
  dispatchEvent(new PopStateEvent('popstate'));
}
