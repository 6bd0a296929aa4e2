import { defineConfig } from 'vitest/config';

// Three projects share one `vitest run`:
//  - unit:        pure tests (planner, CLI, Lua, SDK); no binaries needed.
//  - integration: real kube-apiserver/etcd/istioctl from `npm run testbin`.
//  - e2e:         real istiod + proxyless gRPC clients.
// Integration and e2e suites skip loudly when the binaries are absent, except under CI=true.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: 'unit',
          include: ['test/**/*.test.ts'],
          exclude: ['test/integration/**', 'test/e2e/**', 'node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          // One control plane for the files that call useSharedControlPlane() (README "Control
          // plane for integration tests").
          globalSetup: ['test/support/shared-control-plane.ts'],
          testTimeout: 120_000,
          hookTimeout: 180_000,
          fileParallelism: false,
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          testTimeout: 180_000,
          hookTimeout: 240_000,
          fileParallelism: false,
        },
      },
    ],
  },
});
