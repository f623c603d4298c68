import { generateLicenseKey, licenseKeyAlphabet, normaliseLicenseKey } from "../../src/modules/licenses/license-key";
import { generateDeviceToken, hashDeviceToken, isDeviceToken } from "../../src/modules/licenses/device-token";

describe("license keys", () => {
  it("have the SPLICE-XXXX-XXXX-XXXX form and use no look-alike characters", () => {
    for (let index = 0; index < 500; index += 1) {
      const key = generateLicenseKey();
      expect(key).toMatch(/^SPLICE-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
      expect(key.slice("SPLICE-".length)).not.toMatch(/[01ILO]/);
    }
    expect(licenseKeyAlphabet).not.toMatch(/[01ILO]/);
    expect(new Set(licenseKeyAlphabet).size).toBe(licenseKeyAlphabet.length);
  });

  it("draw every group character from the generator it is given", () => {
    let next = 0;
    const key = generateLicenseKey((max) => next++ % max);
    expect(key).toBe(`SPLICE-${licenseKeyAlphabet.slice(0, 4)}-${licenseKeyAlphabet.slice(4, 8)}-${licenseKeyAlphabet.slice(8, 12)}`);
  });

  it("are normalised by trimming and upper-casing, and refused when malformed", () => {
    expect(normaliseLicenseKey("  splice-ab12-cd34-ef56 ")).toBe("SPLICE-AB12-CD34-EF56");
    for (const bad of ["", "SPLICE-AB12-CD34", "SPLICE-AB12-CD34-EF5!", "SPLICEAB12CD34EF56", "XSPLICE-AB12-CD34-EF56", "SPLICE-AB12-CD34-EF56-GH78", " ".repeat(70)]) {
      expect(normaliseLicenseKey(bad)).toBeUndefined();
    }
  });
});

describe("device tokens", () => {
  it("are random, recognisable, and stored only as their SHA-256", () => {
    const one = generateDeviceToken();
    const two = generateDeviceToken();
    expect(one.token).not.toBe(two.token);
    expect(isDeviceToken(one.token)).toBe(true);
    expect(isDeviceToken("splice.v1.x.y")).toBe(false);
    expect(one.tokenHash).toBe(hashDeviceToken(one.token));
    expect(one.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    expect(one.tokenHash).not.toContain(one.token.slice(4));
  });
});
