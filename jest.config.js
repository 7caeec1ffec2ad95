/** One root jest run: unit, integration (real FerretDB + NATS) and end-to-end tests. */
module.exports = {
  testEnvironment: 'node',
  transform: {
    '^.+\\.ts$': ['@swc/jest', { jsc: { parser: { syntax: 'typescript' }, target: 'es2022' }, module: { type: 'commonjs' } }],
  },
  moduleNameMapper: {
    '^@flywheel/(events|service-kit|testing)$': '<rootDir>/packages/$1/src/index.ts',
    '^@flywheel/service-kit/telemetry$': '<rootDir>/packages/service-kit/src/telemetry.ts',
  },
  testMatch: ['<rootDir>/**/src/**/__tests__/**/*.test.ts', '<rootDir>/e2e/**/*.test.ts', '<rootDir>/deploy/__tests__/**/*.test.ts'],
  // The stack databases are flywheel_<service>: FerretDB is fresh for each run (global setup).
  testPathIgnorePatterns: ['/node_modules/', '/dist/'],
  globalSetup: '<rootDir>/packages/testing/src/global-setup.ts',
  globalTeardown: '<rootDir>/packages/testing/src/global-teardown.ts',
  testTimeout: 30_000,
  maxWorkers: 2,
};
