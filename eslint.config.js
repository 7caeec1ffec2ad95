const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');
const graphql = require('@graphql-eslint/eslint-plugin');

// graphql-eslint's recommended schema rules that read one SDL file alone: the subgraph SDLs are
// fragments (core + module files, federation directives), so rules that need the whole schema
// are left to composition (`npm run compose`), which checks them against every subgraph.
const sdlRules = Object.fromEntries(
  Object.entries(graphql.configs['flat/schema-recommended'].rules).filter(
    ([name]) => !graphql.rules[name.replace('@graphql-eslint/', '')].meta.docs.requiresSchema,
  ),
);

module.exports = tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/__generated__/**', '.tools/**', '.data/**', 'tools/**', 'coverage/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      '@typescript-eslint/no-require-imports': 'off',
      'no-console': ['error', { allow: ['warn', 'error', 'info'] }],
    },
  },
  {
    // Type-aware: a promise nobody awaits or handles is a lost error (or an unhandled rejection
    // that ends the process); a promise where a void callback is expected is the same bug.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { project: './tsconfig.test.json', tsconfigRootDir: __dirname } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    files: ['services/*/src/**/*.graphql'],
    languageOptions: { parser: graphql.parser },
    plugins: { '@graphql-eslint': graphql },
    // One-line descriptions are inline, longer ones block: both styles stay. `rootField`
    // descriptions need the whole schema; types and directives are checked per file.
    rules: {
      ...sdlRules,
      '@graphql-eslint/description-style': 'off',
      '@graphql-eslint/require-description': ['error', { types: true, DirectiveDefinition: true }],
    },
  },
  {
    files: ['**/__tests__/**', 'e2e/**', 'bench/**'],
    rules: { '@typescript-eslint/no-explicit-any': 'off', '@typescript-eslint/no-non-null-assertion': 'off' },
  },
  {
    // Bench scripts print their figures on stdout.
    files: ['bench/**'],
    rules: { 'no-console': 'off' },
  },
);
