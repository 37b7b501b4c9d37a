import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import prettier from 'eslint-config-prettier';

/** The dependency fence of design §7: contract ← policy ← mechanism ← CLI. */
const fence = (message, regex) => ['error', { patterns: [{ regex, message }] }];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'test/fixtures/**', 'schemas/validators.generated.js', 'src/state/validators.generated.js'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  prettier,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  {
    files: ['src/cli/**', 'test/**', 'bench/**', 'scripts/**'],
    rules: { 'no-console': 'off' },
  },
  {
    files: ['schemas/**/*.ts'],
    rules: {
      'no-restricted-imports': fence('schemas/ is the contract: it imports nothing from src/ or controllers/', '(^|/)(src|controllers)/'),
    },
  },
  {
    files: ['controllers/**/*.ts'],
    rules: {
      'no-restricted-imports': fence(
        'controllers/ is policy: it imports only schemas/ and xstate (design §7)',
        '^(?!xstate$|\\./[^/]+$|\\.\\./schemas/[^/]+$)',
      ),
    },
  },
  {
    files: ['src/**/*.ts'],
    ignores: ['src/cli/**'],
    rules: {
      'no-restricted-imports': fence('src/ outside src/cli/ is mechanism: it never imports controllers/ (design §7)', '(^|/)controllers/'),
    },
  },
);
