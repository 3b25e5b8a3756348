def main():
    print("gradtui")
