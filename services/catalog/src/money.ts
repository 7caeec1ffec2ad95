export const CURRENCY = 'CNY';
export interface Money {
  /** Integer fen. */
  amount: number;
  currency: typeof CURRENCY;
}

export const money = (amount: number): Money => ({ amount, currency: CURRENCY });
