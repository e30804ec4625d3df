import { SibylError } from '../util/errors.js';

/**
 * Kubernetes resource quantities (k8s.io/apimachinery/pkg/api/resource, quantity.go), as the metrics
 * API writes CPU ("250m", "1500000n") and memory ("64Mi", "123456Ki"):
 *
 *   quantity        ::= signedNumber suffix
 *   signedNumber    ::= [+-] (digits | digits "." digits? | "." digits)
 *   suffix          ::= binarySI | decimalExponent | decimalSI
 *   binarySI        ::= Ki | Mi | Gi | Ti | Pi | Ei                 (2^10 … 2^60)
 *   decimalSI       ::= n | u | m | "" | k | M | G | T | P | E      (10^-9 … 10^18)
 *   decimalExponent ::= ("e" | "E") signedInteger                   ("1E3" is 1000; "1E" is 10^18)
 *
 * The result is a float (Kubernetes keeps exact decimals; a double's 15–16 digits are more than CPU
 * cores and memory bytes need).
 */
const QUANTITY =
  /^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:(Ki|Mi|Gi|Ti|Pi|Ei)|[eE]([+-]?[0-9]+)|(n|u|m|k|M|G|T|P|E)?)$/;

const BINARY: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

const DECIMAL_EXPONENT: Record<string, number> = {
  n: -9,
  u: -6,
  m: -3,
  k: 3,
  M: 6,
  G: 9,
  T: 12,
  P: 15,
  E: 18,
};

/** The quantity's value (cores for CPU, bytes for memory); throws ERR_QUANTITY_INVALID. */
export function parseQuantity(text: string): number {
  const m = QUANTITY.exec(text);
  if (!m) {
    throw new SibylError(
      'ERR_QUANTITY_INVALID',
      `"${text}" is not a Kubernetes quantity such as 250m, 1500000n, 64Mi or 1.5G`,
    );
  }
  const [, number, binary, exponent, decimal] = m;
  // Scale through the decimal exponent rather than multiplying by 1e-9 and the like, so "250m" is
  // exactly 0.25 and "1500000n" exactly 0.0015.
  if (binary !== undefined) return Number(number) * (BINARY[binary] as number);
  const exp = exponent !== undefined ? Number(exponent) : decimal ? (DECIMAL_EXPONENT[decimal] as number) : 0;
  return exp === 0 ? Number(number) : Number(`${number}e${exp}`);
}

/** parseQuantity, or undefined for text that is not a quantity. */
export function tryParseQuantity(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  try {
    return parseQuantity(text);
  } catch {
    return undefined;
  }
}
