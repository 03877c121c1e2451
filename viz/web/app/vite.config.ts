import { defineConfig } from "vite";

// The build goes to ../dist, which the Go server embeds (viz/web/assets.go).
// Relative URLs, so that the dashboard also works behind a path prefix
// (kubectl proxy, an ingress).
export default defineConfig({
  base: "./",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    assetsDir: "assets",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
    reportCompressedSize: false,
  },
  server: {
    // `npm run dev` against a running web server: VIZ_WEB=http://127.0.0.1:8084
    proxy: { "/api": process.env.VIZ_WEB ?? "http://127.0.0.1:8084" },
  },
});
