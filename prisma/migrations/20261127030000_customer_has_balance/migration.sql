-- Every customer has a balance row (the credits module opens it in the transaction that creates
-- the customer): checked by the database at commit, since the balance row can only be inserted
-- after the customer it references.
CREATE FUNCTION "customer_has_credit_balance"() RETURNS trigger AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM "credit_balance" WHERE "customer_id" = NEW."id") THEN
    RAISE EXCEPTION 'customer % has no credit_balance row', NEW."id" USING ERRCODE = '23514';
  END IF;
  RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER "customer_has_credit_balance" AFTER INSERT ON "customer"
  DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION "customer_has_credit_balance"();
