/** How the browser tests run Chromium (shared by the runners). */
export const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  // Grant camera/microphone without a prompt and feed a generated picture and tone.
  '--use-fake-ui-for-media-stream',
  '--use-fake-device-for-media-stream',
  // Without it Chromium gathers no loopback candidates, and `lo` is all there is here.
  '--allow-loopback-in-peer-connection',
];
