// Extra rspack config for jupyter-builder (package.json jupyterlab.webpackConfig): prepends the early start of
// the spare kernel worker (ts/src/early.ts, bundled here on its own, no shared modules) to the remoteEntry script,
// which JupyterLite loads long before the extension's own chunk (see early.ts). realContentHash (production)
// then names the remoteEntry after its final content, so a changed early start gets a new file name.
const path = require('path');
const esbuild = require('esbuild');
const { rspack } = require('@rspack/core');

const early = esbuild.buildSync({
  entryPoints: [path.join(__dirname, 'src', 'early.ts')],
  bundle: true,
  format: 'iife',
  target: 'es2020',
  minify: true,
  write: false,
  logLevel: 'warning'
}).outputFiles[0].text;

module.exports = {
  plugins: [new rspack.BannerPlugin({ banner: early, raw: true, include: /^remoteEntry\./ })],
  // The carried debugger panel (ts/src/debugger.ts), imported only when a kernel offers the debugger, goes in one
  // chunk named ck-lazy-debugger: the app pack (concurrent_kernel/lite_app_pack.py) leaves ck-lazy-* chunks out,
  // so a page fetches it only when it is used.
  optimization: {
    splitChunks: {
      cacheGroups: {
        debuggerPanel: {
          // with the CSS loader's runtime, which only the panel's stylesheet uses
          test: /[\\/]node_modules[\\/](@jupyterlab[\\/]debugger(-extension)?|css-loader|style-loader)[\\/]/,
          name: 'ck-lazy-debugger',
          chunks: 'async',
          enforce: true
        }
      }
    }
  }
};
