/** Stylesheets are bundled as text (esbuild's `text` loader, console-assets.ts). */
declare module '*.css' {
  const text: string;
  export default text;
}
