// Why this file exists: uPlot is loaded by a <script> tag in index.html (the IIFE build
// the node serves), not imported, so the type checker has to be told that `window.uPlot`
// is the uPlot class from the npm package's own typings. It is optional because the
// script can fail to load; metrics.js checks for it. Types only: build.sh copies
// src/*.js, so this file never reaches dist/.
import type uPlot from 'uplot';

declare global {
  interface Window {
    uPlot?: typeof uPlot;
  }
}

export {};
